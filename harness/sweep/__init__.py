"""Studies: their files, their plan of jobs, the executors that run them, the driver."""
