"""nanoml's classical learners, shipped as a plugin like any third-party package."""
