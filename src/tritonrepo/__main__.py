"""``python -m tritonrepo`` runs the CLI."""

from tritonrepo.cli import main

if __name__ == "__main__":
    main()
