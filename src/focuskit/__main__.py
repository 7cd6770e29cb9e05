"""``python -m focuskit``: the command line (what ``torchrun -m focuskit`` starts)."""

from focuskit.cli import main

if __name__ == "__main__":
    main()
