"""The benchmark of issue 15: `benchmarks/run` measures a grade against its floor, where its time goes, batch
speed-up, the grader's peak memory and how cost grows with the API's size. Run by hand, never by the tests."""
