module example.com/spin-redis/examples/tinygo-kv

go 1.21
