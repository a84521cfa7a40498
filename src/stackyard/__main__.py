from stackyard.cli import main

main()
