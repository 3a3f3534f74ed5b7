"""Infrastructure every layer of the study uses and none of it depends on: the device mesh (`parallel`),
checkpoints, stage workdirs, atomic files, metric writers, image helpers, the command line, the executors and
the one error type a user sees."""
