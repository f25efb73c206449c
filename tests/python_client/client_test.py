"""The Python client (clients/python) against an in-process fake JobService.

What the fake checks: the bearer token arrives as `authorization` metadata (over plain TCP and
over TLS with a certificate made for the test), submit_batch stamps batch id and idempotency
keys, splits a long iterable into streams, reads it lazily, and sends again exactly the items
refused as UNAVAILABLE; watch_batch yields the stream's events.
Run by ctest (python_client_test) with PYTHONPATH=<build>/clients/python.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
from concurrent import futures

import grpc

from reelq import Client, job_spec
from reelq.v1 import jobs_pb2, jobs_pb2_grpc, models_pb2, models_pb2_grpc


def expected_key(batch, index, spec):
    """The documented key of an item without one (reelq.client.item_key), computed here."""
    item = jobs_pb2.JobSpec()
    item.CopyFrom(spec)
    item.batch_id = batch.encode()
    digest = hashlib.sha256(f"{batch}\n{index}\n".encode() +
                            item.SerializeToString(deterministic=True))
    return "py-" + digest.hexdigest()[:32]


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class FakeJobService(jobs_pb2_grpc.JobServiceServicer):

    def __init__(self):
        self.lock = threading.Lock()
        self.authorization = []  # the authorization metadata of every call
        self.streams = []  # the specs of each SubmitBatch stream
        self.refuse_once = set()  # idempotency keys to refuse with UNAVAILABLE the first time
        self.jobs = {}  # idempotency key -> job id
        self.messages = []  # items per SubmitBatch message
        self.ignores_specs = False  # answer as a scheduler older than SubmitBatchRequest.specs
        self.submits = []  # the idempotency key of every SubmitJob call
        self.batch_fields = []  # (budget, webhook url, webhook events) of every SubmitBatch message
        self.list_requests = []
        self.lose_answers = 0  # SubmitJob calls to store and then answer UNAVAILABLE
        self.slow_answers = 0  # SubmitJob calls to store and then answer after `slow_seconds`
        self.slow_seconds = 0.0
        self.slow_streams = 0  # SubmitBatch streams to store and then answer after `slow_seconds`
        self.watch_too_slow = 0  # watches to end after their first event, as for a slow reader
        self.watch_refused = 0  # watches refused before any event, as past a watch limit
        self.watches = 0

    def _note(self, context):
        with self.lock:
            self.authorization.append(dict(context.invocation_metadata()).get("authorization"))

    def SubmitJob(self, request, context):
        # The first `lose_answers` calls store the job, then answer UNAVAILABLE: the answer of a
        # stored job lost on its way back.
        self._note(context)
        key = bytes(request.spec.idempotency_key)
        with self.lock:
            self.submits.append(key)
            duplicate = key in self.jobs
            if not duplicate:
                self.jobs[key] = f"job-{len(self.jobs) + 1}"
            job_id = self.jobs[key]
            lose = self.lose_answers > 0
            if lose:
                self.lose_answers -= 1
            slow = self.slow_answers > 0
            if slow:
                self.slow_answers -= 1
        if slow:
            time.sleep(self.slow_seconds)  # past the client's deadline: stored, answer too late
        if lose:
            context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset")
        return jobs_pb2.SubmitJobResponse(job_id=job_id, duplicate=duplicate)

    def ListJobs(self, request, context):
        # Three jobs, two to a page: the client follows the cursor.
        self._note(context)
        with self.lock:
            self.list_requests.append(request)
        start = int(request.page_token or "0")
        jobs = [jobs_pb2.JobStatus(job_id=f"job-{k}", state=request.state) for k in range(3)]
        page = jobs_pb2.ListJobsResponse(jobs=jobs[start:start + 2])
        if start + 2 < len(jobs):
            page.next_page_token = str(start + 2)
        return page

    def PickTake(self, request, context):
        self._note(context)
        if not request.delete_others:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "take clip gone")
        return jobs_pb2.JobStatus(job_id=request.job_id, picked_job_id=request.take_job_id)

    def GetWallet(self, request, context):
        self._note(context)
        return jobs_pb2.Wallet(tenant=request.tenant or "own", available_micros=request.ledger_limit)

    def GetJob(self, request, context):
        self._note(context)
        return jobs_pb2.JobStatus(job_id=request.job_id, state=jobs_pb2.JOB_STATE_RUNNING)

    def CancelJob(self, request, context):
        self._note(context)
        return jobs_pb2.JobStatus(job_id=request.job_id, state=jobs_pb2.JOB_STATE_CANCELLED)

    def CancelBatch(self, request, context):
        self._note(context)
        return jobs_pb2.BatchActionResponse(
            jobs_changed=7, progress=jobs_pb2.BatchProgress(batch_id=request.batch_id, cancelled=7))

    def RetryBatch(self, request, context):
        self._note(context)
        if request.batch_id == "over-budget":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "batch budget: raise it first")
        return jobs_pb2.BatchActionResponse(
            jobs_changed=2, progress=jobs_pb2.BatchProgress(batch_id=request.batch_id, pending=2))

    def SubmitBatch(self, request_iterator, context):
        self._note(context)
        response = jobs_pb2.SubmitBatchResponse()
        specs = []
        index = -1
        for request in request_iterator:
            # A message's items: `spec`, or `spec` when set and then each of `specs`.
            if self.ignores_specs:
                items = [request.spec]  # as an older scheduler: `spec` only, empty when unset
            else:
                items = [request.spec] if not request.specs or request.HasField("spec") else []
                items += list(request.specs)
            with self.lock:
                self.messages.append(len(request.specs) + (1 if request.HasField("spec") else 0))
                self.batch_fields.append((request.budget_micros, bytes(request.batch_webhook_url),
                                          bytes(request.batch_webhook_events)))
            for spec in items:
                index += 1
                specs.append(spec)
                key = spec.idempotency_key.decode()
                item = response.items.add(index=index)
                with self.lock:
                    if key in self.refuse_once:
                        self.refuse_once.discard(key)
                        item.code = grpc.StatusCode.UNAVAILABLE.value[0]
                        item.message = "redis: connection lost"
                        continue
                    if not spec.prompt:
                        item.code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
                        item.message = "prompt: required"
                        continue
                    item.duplicate = key in self.jobs
                    item.job_id = self.jobs.setdefault(key, f"job-{len(self.jobs)}")
                response.batch_id = spec.batch_id.decode()
        with self.lock:
            self.streams.append(specs)
            slow = self.slow_streams > 0
            if slow:
                self.slow_streams -= 1
        if slow:
            time.sleep(self.slow_seconds)  # past the stream's deadline: stored, answer too late
        return response

    def WatchJob(self, request, context):
        self._note(context)
        with self.lock:
            self.watches += 1
            too_slow = self.watch_too_slow > 0
            self.watch_too_slow -= 1 if too_slow else 0
            refused = self.watch_refused > 0
            self.watch_refused -= 1 if refused else 0
        if refused:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          "watch refused: tenant 'default' has 1000 watches open "
                          "(scheduler.max_watches_per_tenant)")
        if request.job_id:
            # A job's watch replays its transitions from the first.
            for state in (jobs_pb2.JOB_STATE_PENDING, jobs_pb2.JOB_STATE_RUNNING,
                          jobs_pb2.JOB_STATE_SUCCEEDED):
                yield jobs_pb2.JobEvent(job_id=request.job_id, state=state, detail=f"s{state}")
                if too_slow:
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  "the client reads too slowly; open the watch again")
            return
        for done in range(1, 4):
            yield jobs_pb2.JobEvent(
                job_id=f"job-{done}", state=jobs_pb2.JOB_STATE_SUCCEEDED,
                batch=jobs_pb2.BatchProgress(batch_id=request.batch_id, total=3, succeeded=done))


class FakeModelService(models_pb2_grpc.ModelServiceServicer):

    def ListModels(self, request, context):
        return models_pb2.ListModelsResponse(models=[models_pb2.ModelInfo(id="kling-3.0")])

    def GetStats(self, request, context):
        return models_pb2.GetStatsResponse(
            models=[models_pb2.ModelQueueStats(model="kling-3.0", queue_depth=4)])


class ClientTest(unittest.TestCase):

    def start(self, server_credentials=None):
        self.fake = FakeJobService()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        jobs_pb2_grpc.add_JobServiceServicer_to_server(self.fake, self.server)
        models_pb2_grpc.add_ModelServiceServicer_to_server(FakeModelService(), self.server)
        if server_credentials is None:
            port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            port = self.server.add_secure_port("127.0.0.1:0", server_credentials)
        self.server.start()
        self.addCleanup(self.server.stop, None)
        return port

    def test_token_travels_as_bearer_metadata(self):
        port = self.start()
        with Client(f"127.0.0.1:{port}", token="s3cret") as client:
            self.assertEqual(client.get("job-7").job_id, "job-7")
            client.cancel("job-7")
        with Client(f"127.0.0.1:{port}") as anonymous:
            anonymous.get("job-7")
        self.assertEqual(self.fake.authorization, ["Bearer s3cret", "Bearer s3cret", None])

    def test_submit_sent_again_after_a_lost_answer_makes_the_job_once(self):
        port = self.start()
        self.fake.lose_answers = 2
        with Client(f"127.0.0.1:{port}") as client:
            answer = client.submit(job_spec("a lighthouse", models=["kling-3.0"], duration_seconds=5))
        self.assertEqual(answer.job_id, "job-1")
        self.assertTrue(answer.duplicate)
        self.assertEqual(len(self.fake.jobs), 1, "the job was made twice")
        self.assertEqual(len(self.fake.submits), 3)
        self.assertEqual(len(set(self.fake.submits)), 1, "each send carried another key")
        self.assertTrue(self.fake.submits[0].startswith(b"py-"))
        # A key of the caller's own is kept; UNAVAILABLE past the retries is raised.
        self.fake.lose_answers = 5
        own = job_spec("a harbour", duration_seconds=5)
        own.idempotency_key = b"mine-1"
        with Client(f"127.0.0.1:{port}") as client:
            with self.assertRaises(grpc.RpcError) as lost:
                client.submit(own, retries=1)
        self.assertEqual(lost.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(self.fake.submits[-2:], [b"mine-1", b"mine-1"])

    def test_submit_error_carries_its_key_and_a_resend_with_it_makes_no_second_job(self):
        port = self.start()
        self.fake.lose_answers = 3  # more than `retries`: stored, every answer lost
        with Client(f"127.0.0.1:{port}") as client:
            with self.assertRaises(grpc.RpcError) as lost:
                client.submit(job_spec("a lighthouse", duration_seconds=5), retries=2)
            self.assertEqual(lost.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertEqual(len(self.fake.jobs), 1)
            stored_key = next(iter(self.fake.jobs)).decode()
            self.assertEqual(lost.exception.idempotency_key, stored_key)
            # The caller's retry with the key is answered with the stored job, not a second one.
            again = job_spec("a lighthouse", duration_seconds=5,
                             idempotency_key=lost.exception.idempotency_key)
            answer = client.submit(again)
        self.assertTrue(answer.duplicate)
        self.assertEqual(answer.job_id, "job-1")
        self.assertEqual(len(self.fake.jobs), 1, "the caller's retry made a second job")

    def test_submit_past_its_deadline_is_sent_again_with_the_same_key(self):
        port = self.start()
        self.fake.slow_answers = 1  # stored, answered after the client's deadline
        self.fake.slow_seconds = 1.0
        with Client(f"127.0.0.1:{port}", timeout=0.3) as client:
            answer = client.submit(job_spec("a harbour", duration_seconds=5))
        self.assertEqual(answer.job_id, "job-1")
        self.assertTrue(answer.duplicate)
        self.assertEqual(len(self.fake.jobs), 1, "the job was made twice")
        self.assertEqual(len(set(self.fake.submits)), 1, "each send carried another key")
        # Past the retries the deadline is raised, with the key to send again.
        self.fake.slow_answers = 2
        with Client(f"127.0.0.1:{port}", timeout=0.3) as client:
            with self.assertRaises(grpc.RpcError) as late:
                client.submit(job_spec("a pier", duration_seconds=5), retries=1)
        self.assertEqual(late.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertEqual(late.exception.idempotency_key, self.fake.submits[-1].decode())
        self.assertEqual(len(self.fake.jobs), 2)

    def test_list_pick_wallet_models_and_stats(self):
        port = self.start()
        with Client(f"127.0.0.1:{port}", token="s3cret") as client:
            listed = list(client.list_jobs(state=jobs_pb2.JOB_STATE_FAILED, batch_id="b1",
                                           page_size=2))
            self.assertEqual([j.job_id for j in listed], ["job-0", "job-1", "job-2"])
            self.assertEqual(len(self.fake.list_requests), 2)
            self.assertEqual(self.fake.list_requests[1].page_token, "2")
            self.assertEqual(self.fake.list_requests[0].batch_id, "b1")
            self.assertEqual(self.fake.list_requests[0].state, jobs_pb2.JOB_STATE_FAILED)
            picked = client.pick_take("cmp-1", "take-2", delete_others=True)
            self.assertEqual(picked.picked_job_id, "take-2")
            with self.assertRaises(grpc.RpcError) as gone:
                client.pick_take("cmp-1", "take-3")
            self.assertEqual(gone.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
            self.assertEqual(client.get_wallet("studio", ledger_limit=7).available_micros, 7)
            self.assertEqual(client.list_models().models[0].id, "kling-3.0")
            self.assertEqual(client.get_stats().models[0].queue_depth, 4)
        self.assertEqual(set(self.fake.authorization), {"Bearer s3cret"})

    def test_submit_batch_names_its_budget_and_webhook_on_every_message(self):
        port = self.start()
        specs = [job_spec(f"shot {k}", duration_seconds=5) for k in range(150)]
        with Client(f"127.0.0.1:{port}") as client:
            result = client.submit_batch(specs, budget_micros=5_000_000,
                                         batch_webhook_url="https://hooks.example/reelq",
                                         batch_webhook_events="all")
        self.assertEqual(result.accepted, 150)
        self.assertEqual(len(self.fake.batch_fields), 2)
        for fields in self.fake.batch_fields:
            self.assertEqual(fields, (5_000_000, b"https://hooks.example/reelq", b"all"))

    def test_batch_cancel_and_retry_carry_the_batch_and_the_token(self):
        port = self.start()
        with Client(f"127.0.0.1:{port}", token="s3cret") as client:
            cancelled = client.cancel_batch("b1")
            self.assertEqual(cancelled.jobs_changed, 7)
            self.assertEqual(cancelled.progress.batch_id, "b1")
            retried = client.retry_batch("b1")
            self.assertEqual(retried.progress.pending, 2)
            with self.assertRaises(grpc.RpcError) as refused:
                client.retry_batch("over-budget")
            self.assertEqual(refused.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(self.fake.authorization, ["Bearer s3cret"] * 3)

    @unittest.skipUnless(shutil.which("openssl"), "openssl is needed to make a test certificate")
    def test_tls_with_token(self):
        with tempfile.TemporaryDirectory() as tmp:
            key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "1", "-subj", "/CN=localhost", "-addext",
                            "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out",
                            cert], check=True, capture_output=True)
            key_pem, cert_pem = read_bytes(key), read_bytes(cert)
        port = self.start(grpc.ssl_server_credentials([(key_pem, cert_pem)]))
        with Client(f"localhost:{port}", tls=True, root_certificates=cert_pem,
                    token="t1") as client:
            self.assertEqual(client.get("job-1").job_id, "job-1")
        self.assertEqual(self.fake.authorization, ["Bearer t1"])
        # Plain TCP against the TLS port fails instead of sending the token in the clear.
        with Client(f"localhost:{port}", token="t1", timeout=2) as plain:
            with self.assertRaises(grpc.RpcError):
                plain.get("job-1")
        self.assertEqual(self.fake.authorization, ["Bearer t1"])

    @unittest.skipUnless(shutil.which("openssl"), "openssl is needed to make test certificates")
    def test_mutual_tls_and_root_certificates_alone_mean_tls(self):
        with tempfile.TemporaryDirectory() as tmp:
            def make(name, cn):
                key, cert = os.path.join(tmp, name + ".key"), os.path.join(tmp, name + ".pem")
                subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                "-days", "1", "-subj", f"/CN={cn}", "-addext",
                                "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key,
                                "-out", cert], check=True, capture_output=True)
                return read_bytes(key), read_bytes(cert)
            server_key, server_cert = make("server", "localhost")
            client_key, client_cert = make("client", "studio-client")
        port = self.start(grpc.ssl_server_credentials(
            [(server_key, server_cert)], root_certificates=client_cert, require_client_auth=True))
        with Client(f"localhost:{port}", root_certificates=server_cert,
                    certificate_chain=client_cert, private_key=client_key) as client:
            self.assertEqual(client.get("job-2").job_id, "job-2")
        # Without the client's certificate the scheduler refuses the connection.
        with Client(f"localhost:{port}", root_certificates=server_cert, timeout=2) as anonymous:
            with self.assertRaises(grpc.RpcError):
                anonymous.get("job-2")
        with self.assertRaises(ValueError) as caught:
            Client(f"localhost:{port}", certificate_chain=client_cert)
        self.assertIn("certificate_chain and private_key", str(caught.exception))
        self.assertEqual(len(self.fake.authorization), 1)

    def test_submit_batch_chunks_stamps_and_resends_unavailable_items(self):
        port = self.start()
        read = []

        def make(n):
            return job_spec(f"prompt {n}" if n != 5 else "", models=["kling-3.0"],
                            duration_seconds=5)

        def specs():
            for n in range(7):
                read.append(n)
                yield make(n)

        key = {n: expected_key("b1", n, make(n)) for n in range(7)}
        self.fake.refuse_once = {key[1], key[4]}
        with Client(f"127.0.0.1:{port}", token="tok") as client:
            result = client.submit_batch(specs(), batch_id="b1", items_per_stream=3)
        self.assertEqual(result.batch_id, "b1")
        self.assertEqual(read, list(range(7)))
        self.assertEqual(result.accepted, 6)
        self.assertEqual(sorted(result.errors), [5])
        self.assertEqual(result.errors[5][0], grpc.StatusCode.INVALID_ARGUMENT.value[0])
        self.assertEqual(result.job_ids[5], "")
        self.assertEqual(len(set(filter(None, result.job_ids))), 6)
        # Streams: [0,1,2], resend [1], [3,4,5], resend [4], [6].
        keys = [[s.idempotency_key.decode() for s in stream] for stream in self.fake.streams]
        self.assertEqual(keys, [[key[0], key[1], key[2]], [key[1]], [key[3], key[4], key[5]],
                                [key[4]], [key[6]]])
        self.assertTrue(all(s.batch_id == b"b1" for st in self.fake.streams for s in st))
        self.assertEqual(result.streams, 5)
        self.assertEqual(set(self.fake.authorization), {"Bearer tok"})

    def test_submit_batch_sends_a_stream_past_its_deadline_again_without_paying_twice(self):
        port = self.start()
        self.fake.slow_streams = 1  # stored, answered after the stream's deadline
        self.fake.slow_seconds = 1.0
        specs = [job_spec(f"a quay {n}", duration_seconds=5) for n in range(3)]
        with Client(f"127.0.0.1:{port}") as client:
            result = client.submit_batch(specs, batch_id="b2", stream_timeout=0.3)
        self.assertEqual(result.accepted, 3)
        self.assertEqual(result.duplicates, 3, "the resent stream found the first one's jobs")
        self.assertEqual(result.streams, 2)
        self.assertEqual(len(self.fake.jobs), 3, "a job was made twice")

    def test_submit_batch_sends_many_items_a_message(self):
        port = self.start()
        specs = [job_spec(f"prompt {n}", models=["kling-3.0"], duration_seconds=5)
                 for n in range(250)]
        with Client(f"127.0.0.1:{port}") as client:
            result = client.submit_batch(specs, batch_id="b4")
        self.assertEqual(result.accepted, 250)
        self.assertEqual(self.fake.messages, [100, 100, 50])
        keys = [s.idempotency_key.decode() for s in self.fake.streams[0]]
        self.assertEqual(keys, [expected_key("b4", n, specs[n]) for n in range(250)])

    def test_submit_batch_again_makes_no_job_twice_and_a_fixed_item_is_new(self):
        port = self.start()
        specs = [job_spec(f"prompt {n}", models=["kling-3.0"], duration_seconds=5)
                 for n in range(3)]
        specs[1] = job_spec("", models=["kling-3.0"], duration_seconds=5)  # refused
        with Client(f"127.0.0.1:{port}") as client:
            first = client.submit_batch(specs, batch_id="b6")
            self.assertEqual(sorted(first.errors), [1])
            # The same call again (as after an error that ended it): nothing made twice.
            again = client.submit_batch(specs, batch_id="b6")
            self.assertEqual(again.duplicates, 2)
            self.assertEqual(again.job_ids[0], first.job_ids[0])
            # Only the fixed item, now at index 0 of its own call: a new job, not item 0's.
            fixed = client.submit_batch(
                [job_spec("prompt 1, fixed", models=["kling-3.0"], duration_seconds=5)],
                batch_id="b6")
        self.assertEqual(fixed.accepted, 1)
        self.assertEqual(fixed.duplicates, 0)
        self.assertNotEqual(fixed.job_ids[0], first.job_ids[0])

    def test_submit_batch_names_a_scheduler_without_many_items_a_message(self):
        port = self.start()
        self.fake.ignores_specs = True
        specs = [job_spec(f"prompt {n}", models=["kling-3.0"], duration_seconds=5)
                 for n in range(3)]
        with Client(f"127.0.0.1:{port}") as client:
            with self.assertRaises(RuntimeError) as caught:
                client.submit_batch(specs, batch_id="b5")
        self.assertIn("answered for 1 of 3 items", str(caught.exception))
        self.assertIn("SubmitBatchRequest.specs", str(caught.exception))
        self.assertEqual(self.fake.jobs, {})  # its one item a message was empty: refused
        # An error that ends the call names the batch, to send the rest to.
        self.assertEqual(caught.exception.batch_id, "b5")
        self.assertEqual(caught.exception.batch_result.batch_id, "b5")

    def test_submit_batch_refuses_a_foreign_batch_id(self):
        port = self.start()
        with Client(f"127.0.0.1:{port}") as client:
            with self.assertRaises(ValueError):
                client.submit_batch([job_spec("x", batch_id="other")], batch_id="b2")

    def test_watch_batch_yields_events_to_the_end(self):
        port = self.start()
        with Client(f"127.0.0.1:{port}") as client:
            events = list(client.watch_batch("b3"))
        self.assertEqual([e.batch.succeeded for e in events], [1, 2, 3])
        self.assertTrue(all(e.batch.batch_id == "b3" for e in events))

    def test_a_watch_ended_for_reading_too_slowly_is_reopened_without_repeats(self):
        port = self.start()
        self.fake.watch_too_slow = 2
        with Client(f"127.0.0.1:{port}") as client:
            events = list(client.watch_job("job-7"))
        self.assertEqual([e.state for e in events],
                         [jobs_pb2.JOB_STATE_PENDING, jobs_pb2.JOB_STATE_RUNNING,
                          jobs_pb2.JOB_STATE_SUCCEEDED])
        self.assertEqual(self.fake.watches, 3)

    def test_a_watch_refused_before_any_event_is_raised_not_reopened(self):
        # RESOURCE_EXHAUSTED before anything came is the scheduler's watch limit, not a slow
        # reader: opening it again would only be refused again.
        port = self.start()
        self.fake.watch_refused = 1
        with Client(f"127.0.0.1:{port}") as client:
            with self.assertRaises(grpc.RpcError) as raised:
                list(client.watch_job("job-7"))
        self.assertEqual(raised.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("max_watches_per_tenant", raised.exception.details())
        self.assertEqual(self.fake.watches, 1)


if __name__ == "__main__":
    unittest.main()
