module ocirpc/clients/go

go 1.19
