from hdr.cli.main import main

main()
