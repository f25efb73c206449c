"""reelq: a small Python client for the reelq.v1 gRPC API.

    from reelq import Client, job_spec
    with Client("127.0.0.1:50051") as client:
        result = client.submit_batch(job_spec(prompt=p, models=["auto"], duration_seconds=5)
                                     for p in prompts)
        for event in client.watch_batch(result.batch_id):
            ...

The generated stubs (reelq.v1.jobs_pb2, reelq.v1.jobs_pb2_grpc, ...) come from proto/ at build
time (the CMake target reelq_python_client); the wrapper lives in reelq.client.
"""

from reelq.client import BatchResult, Client, item_key, job_spec

__all__ = ["BatchResult", "Client", "item_key", "job_spec"]
