module example.com/spin-redis/tests/guests/go-sleep

go 1.21
