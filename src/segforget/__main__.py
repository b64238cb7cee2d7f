"""``python -m segforget`` (also what ``torchrun -m segforget`` starts)."""

from segforget.cli import main

if __name__ == "__main__":
    main()
