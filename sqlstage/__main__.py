from sqlstage.cli import main

main()
