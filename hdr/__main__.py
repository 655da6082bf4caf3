from hdr.cli import main

main()
