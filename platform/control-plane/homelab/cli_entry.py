"""`python -m homelab.cli_entry`: the CLI without the uv wrapper (used by benchmarks)."""

from homelab.cli import main

if __name__ == "__main__":
    main()
