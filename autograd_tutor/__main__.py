from autograd_tutor.cli import main

main()
