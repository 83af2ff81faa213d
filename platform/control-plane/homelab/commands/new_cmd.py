"""`homelab new`: being written."""
import click

command = click.Command("new", help="Scaffold a new service (being written).")
