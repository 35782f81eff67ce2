"""Ray jobs: each module is a short composition of `elcore` pieces with a `python -m` entry."""
