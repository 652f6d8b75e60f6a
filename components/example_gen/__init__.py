"""An ExampleGen over MovieLens files: rating examples split train/eval, and the movie catalog."""
from components.example_gen.component import MovieLensExampleGen

__all__ = ['MovieLensExampleGen']
