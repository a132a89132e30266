from crimeaudit.cli import main

main()
