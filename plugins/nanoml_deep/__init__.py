"""nanoml deep learners plugin."""
