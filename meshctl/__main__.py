from meshctl.cli.app import run

run()
