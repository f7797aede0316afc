module github.com/ocirpc/ocirpc/clients/go

go 1.19
