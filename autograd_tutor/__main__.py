from autograd_tutor.entry import main

main()
