from eulerpub.cli.app import main

main()
