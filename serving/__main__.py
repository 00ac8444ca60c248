"""`python -m serving`: see serving.server.main."""

from serving.server.main import main

if __name__ == "__main__":
    main()
