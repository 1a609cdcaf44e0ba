"""``python -m mpbench`` (also what torchrun launches: ``torchrun -m mpbench train ...``)."""

from mpbench.cli import main

main()
