"""`import cupy` answered by the stand-in GPU (tests/standin.py), for code that imports CuPy itself: with
this folder on PYTHONPATH, a notebook run on the CPU finds a GPU (`torch.cuda.is_available()` is True) and
the chapters that pick their device take it. `tools/gpu_run.sh --standin` runs every notebook so."""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import standin
sys.modules[__name__] = standin.module
