"The book's kernel: ipykernel, reporting the language without Python's version, so that JupyterLab writes
the same `language_info` the notebooks store on every machine (and opening a chapter leaves it unmodified)."
from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelapp import launch_new_instance
IPythonKernel.language_info = {k: v for k, v in IPythonKernel.language_info.items() if k != 'version'}
launch_new_instance()
