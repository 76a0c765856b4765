from bodega.cli import main

main(prog_name="bodega")
