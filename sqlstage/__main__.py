from sqlstage.cli import run

run()
