"""The docker backend: every instance a pod of two containers on the run's own
network (backend.py, pod.py), the images it runs (images.py: the base;
builds.py: packages, Python and targets, built with builder.py), and the
engine it talks to (engine.py)."""
