"""``python -m mrirecon`` (also what ``torchrun -m mrirecon`` runs)."""

from mrirecon.cli.app import main

if __name__ == "__main__":
    main()
