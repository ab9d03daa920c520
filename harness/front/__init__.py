"""The sweep front: plan a sweep's points, check them, launch them as one job array
through Hydra + submitit, show progress, print the closing table; make reproduce.

python -m harness.front.sweep --exposures 0,0.5,1 -- profile=smoke   # what make sweep runs

Owns: everything before and after the runs of a sweep. May import any other package.
"""
