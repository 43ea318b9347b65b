"""``python -m agentlab`` runs the command line."""

from agentlab.cli import main

main()
