from ferlab.cli import main

main()
