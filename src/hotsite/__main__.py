from hotsite.cli import main

main()
