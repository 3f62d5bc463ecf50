from parcours.cli import main

main()
