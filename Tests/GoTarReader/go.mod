module gotarreader

go 1.19
