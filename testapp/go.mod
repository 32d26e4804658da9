module kamal-pulumi/testapp

go 1.22
