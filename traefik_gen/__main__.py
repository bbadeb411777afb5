from traefik_gen.cli import main

main()
