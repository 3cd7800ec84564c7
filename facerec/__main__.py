from facerec.cli import main

main()
