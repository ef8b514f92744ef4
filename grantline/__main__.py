from grantline.cli import main

main()
