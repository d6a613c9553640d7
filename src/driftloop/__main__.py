"""``python -m driftloop`` runs the command line."""

from driftloop.cli.main import main

__all__: list[str] = []

if __name__ == "__main__":
    main()
