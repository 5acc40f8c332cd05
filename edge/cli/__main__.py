"""`python -m edge.cli` = `edge-ser`."""
from edge.cli.app import main

main()
