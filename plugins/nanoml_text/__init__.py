"""nanoml's text plugin: the fortunes dataset, vectorizers and the text pipeline."""
