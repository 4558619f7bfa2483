"""The whole app through gradio_client: every endpoint, hostile input, runs that survive the app being killed."""

import urllib.request

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from core.runs.store import checkpoint_step, read_status
from scripts.appserver import start_app
from tests.support.waiting import wait_for

pytestmark = pytest.mark.app

ENDPOINTS = ["start_run", "run_status", "stop_run", "resume_run", "delete_run", "share_run", "fill_mask",
             "mask_each_word", "probe_summary", "embedding_map", "neighbours", "layer_similarity", "run_benchmark",
             "stop_benchmark", "estimate_benchmark"]
# a run meant to be stopped or killed midway: long enough for that, short enough for the app's 24 h limit even when
# the machine is busy (the estimate follows the machine's speed at that moment)
LONG_RUN_STEPS = 20_000
SMALL_RUN = dict(teacher="bundled-teacher", student_layers=2, steps=12, batch_size=8, max_length=32, save_every=4)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("app")
    running = start_app(folder / "runs", folder / "app.log")
    yield running
    running.kill()


def assert_explained(error: AppError) -> None:
    """The app's own sentence reached the user: not a traceback, not gradio's stand-in for an unexpected crash."""
    message = str(error)
    assert len(message) > 20 and "Traceback" not in message and "upstream Gradio app" not in message, message


def start_run(client, owner=None, **overrides):
    owner_id, dropdown, _ = client.predict(owner=owner, **{**SMALL_RUN, **overrides}, api_name="/start_run")
    return owner_id, dropdown["value"]


def state_of(client, run_id, owner):
    return client.predict(run_id=run_id, owner=owner, api_name="/run_status")[2]


def test_every_main_action_has_a_stable_api_name(app):
    names = app.client().view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(f"/{n}" for n in ENDPOINTS) <= set(names)


def test_each_address_gets_its_own_page_the_same_each_time(app):
    pages = [urllib.request.urlopen(app.url.replace("127.0.0.1", host)).read()
             for host in ("127.0.0.1", "localhost", "127.0.0.1")]
    assert pages[0] == pages[2] and pages[0] != pages[1]  # kept per address (ui.serving.PageCache)
    assert b'"root":"http://localhost:' in pages[1] and b'"root":"http://127.0.0.1:' in pages[0]


def test_fill_mask_with_the_bundled_pair(app):
    figure, table = app.client().predict(model_1="bundled-teacher", model_2="bundled-student", top_k=5,
                                         sentence="Доброе [MASK]! Как спалось?", api_name="/fill_mask")
    assert "bundled-student" in str(table) and "top-1" in str(table).lower()
    assert figure is not None


def test_a_run_started_from_the_app_finishes_and_its_student_is_usable(app):
    client = app.client()
    owner, run_id = start_run(client)
    wait_for(lambda: "finished" in state_of(client, run_id, owner), every=0.5)
    status = state_of(client, run_id, owner)
    assert "step 12 of 12" in status
    _, table = client.predict(model_1="bundled-teacher", model_2=f"run:{run_id}", top_k=5,
                              sentence="Спасибо за [MASK]!", api_name="/fill_mask")
    assert run_id in str(table)


BAD_INPUTS = [
    ("/fill_mask", dict(model_1="bundled-teacher", model_2="bundled-student", top_k=5, sentence="Без маски.")),
    ("/fill_mask", dict(model_1="bundled-teacher", model_2="bundled-student", top_k=5, sentence="   ")),
    ("/fill_mask", dict(model_1="bundled-teacher", model_2="bundled-student", top_k=5, sentence="[MASK] " * 21)),
    ("/fill_mask", dict(model_1="bundled-teacher", model_2="bundled-student", top_k=5,
                        sentence="слово " * 600 + "[MASK]")),
    ("/fill_mask", dict(model_1="../../etc/passwd", model_2="bundled-student", top_k=5, sentence="Привет [MASK]")),
    ("/fill_mask", dict(model_1="run:../../secrets", model_2="bundled-student", top_k=5, sentence="Привет [MASK]")),
    ("/fill_mask", dict(model_1="not a model", model_2="bundled-student", top_k=5, sentence="Привет [MASK]")),
    ("/fill_mask", dict(model_1="DeepPavlov/rubert-base-cased-conversational", model_2="bundled-student", top_k=5,
                        sentence="Привет [MASK]")),
    ("/fill_mask", dict(model_1="bundled-teacher", model_2="bundled-student", top_k=True, sentence="Привет [MASK]")),
    ("/mask_each_word", dict(model_1="bundled-teacher", model_2="bundled-student", top_k=5, sentence="[MASK]")),
    ("/probe_summary", dict(model_1="bundled-teacher", model_2="", model_3="")),
    ("/embedding_map", dict(source="Typed sentences", sentences="одно\nдва", model_1="bundled-teacher",
                            model_2="bundled-student")),
    ("/embedding_map", dict(source="Typed sentences", sentences="a\nb\nc\nd", model_1="bundled-teacher",
                            model_2="bundled-student", layer_1=99)),
    ("/layer_similarity", dict(source="Probe set", model_1="bundled-teacher", model_2="")),
    ("/start_run", dict(owner=None, **{**SMALL_RUN, "temperature": 0})),
    ("/start_run", dict(owner=None, **{**SMALL_RUN, "teacher": "/no/such/folder"})),
    ("/start_run", dict(owner=None, **{**SMALL_RUN, "init_layers": "0,x"})),
    ("/start_run", dict(owner=None, **{**SMALL_RUN, "corpus_source": "upload a .txt"})),
    ("/stop_run", dict(run_id="../../etc", owner=None)),
    ("/stop_run", dict(run_id="no-such-run", owner=None)),
    ("/resume_run", dict(run_id="", owner=None, up_to_step=0)),
    ("/run_benchmark", dict(models=["arch:no-such-architecture"], device="cpu", batch_sizes="1", seq_len=32)),
    ("/run_benchmark", dict(models=["bundled-student"], device="cpu", batch_sizes="0", seq_len=32)),
    ("/run_benchmark", dict(models=["bundled-student"], device="cpu", batch_sizes="1", seq_len=100000)),
    ("/run_benchmark", dict(models=["bundled-student"], device="cuda", batch_sizes="1", seq_len=32)),
    # inputs of the wrong type or size, as gradio_client and raw HTTP can send them
    ("/fill_mask", dict(model_1="bundled-teacher", model_2="bundled-student", top_k=None, sentence="Привет [MASK]")),
    ("/fill_mask", dict(model_1="bundled-teacher", model_2="bundled-student", top_k="abc", sentence="Привет [MASK]")),
    ("/fill_mask", dict(model_1=5, model_2="bundled-student", top_k=5, sentence="Привет [MASK]")),
    ("/fill_mask", dict(model_1=["bundled-teacher"], model_2="bundled-student", top_k=5, sentence="Привет [MASK]")),
    ("/fill_mask", dict(model_1="x" * 300, model_2="bundled-student", top_k=5, sentence="Привет [MASK]")),
    ("/neighbours", dict(source="Typed sentences", sentences="a\nb\nc\nd", model_1="bundled-teacher",
                         model_2="bundled-student", highlight="1", neighbours=None)),
    ("/embedding_map", dict(source="Typed sentences", sentences="a\nb\nc\nd", model_1="bundled-teacher",
                            model_2="bundled-student", layer_1="x")),
    ("/embedding_map", dict(source="Typed sentences", sentences="a\nb\nc\nd", model_1="bundled-teacher",
                            model_2="bundled-student", pooling=None, method=None, dims=None)),
    ("/layer_similarity", dict(source="Probe set", model_1="bundled-teacher", model_2="bundled-student",
                               pooling=None)),
    ("/run_benchmark", dict(models=["bundled-student"], device="cpu", batch_sizes="1", seq_len="x")),
    ("/run_benchmark", dict(models=["bundled-student"], device="cpu", batch_sizes="1", seq_len=32, modes=None)),
    ("/run_benchmark", dict(models=["bundled-student"], device="cpu", batch_sizes="1", seq_len=32, runs=1000000)),
    ("/run_benchmark", dict(models=["bundled-student"], device="cpu", batch_sizes="300", seq_len=32)),
    ("/run_benchmark", dict(models=5, device="cpu", batch_sizes="1", seq_len=32)),
]


@pytest.mark.parametrize("endpoint, kwargs", BAD_INPUTS, ids=[f"{e}-{i}" for i, (e, _) in enumerate(BAD_INPUTS)])
def test_bad_input_gets_a_sentence_and_the_app_keeps_answering(app, endpoint, kwargs):
    client = app.client()
    with pytest.raises(AppError) as error:
        client.predict(**kwargs, api_name=endpoint)
    assert_explained(error.value)
    _, table = client.predict(model_1="bundled-teacher", model_2="bundled-student", top_k=3,
                              sentence="Доброе [MASK]!", api_name="/fill_mask")
    assert table


def test_hostile_uploads_are_refused_with_a_reason(app, tmp_path):
    client = app.client()
    files = {"binary.txt": bytes(range(256)) * 64, "empty.txt": b"", "cp1251.txt": "Привет, мир".encode("cp1251"),
             "one-long-line.txt": ("а" * 2_000_000).encode("utf-8")}
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(AppError) as error:
            client.predict(source="Upload a file", file=handle_file(str(path)), model_1="bundled-teacher",
                           model_2="bundled-student", api_name="/embedding_map")
        assert_explained(error.value)
        with pytest.raises(AppError) as error:
            client.predict(owner=None, **{**SMALL_RUN, "corpus_source": "upload a .txt",
                                          "corpus_file": handle_file(str(path))}, api_name="/start_run")
        assert_explained(error.value)


def test_start_shows_the_run_at_once_and_delete_right_after_stop_works(app):
    client = app.client()
    owner, run_dropdown, table = client.predict(owner=None, **{**SMALL_RUN, "steps": LONG_RUN_STEPS, "save_every": 4,
                                                               "student_layers": 1}, api_name="/start_run")
    run_id = run_dropdown["value"]
    row = dict(zip(table["headers"], next(r for r in table["data"] if r[0] == run_id)))
    assert (row["teacher"], row["student"]) == ("bundled-teacher", "1 L"), row  # before the run writes its config
    wait_for(lambda: "running · step" in state_of(client, run_id, owner)
             and " step 0 of" not in state_of(client, run_id, owner), every=0.5)
    client.predict(run_id=run_id, owner=owner, api_name="/stop_run")
    table = client.predict(run_id=run_id, owner=owner, api_name="/delete_run")[0]  # no "Stop the run first"
    assert run_id not in str(table) and not (app.runs / run_id).exists()


def test_a_utf16_corpus_upload_is_named_by_encoding_and_file_name(app, tmp_path):
    path = tmp_path / "мой корпус.txt"
    path.write_bytes("Привет!\nКак дела?\n".encode("utf-16"))
    with pytest.raises(AppError) as error:
        app.client().predict(owner=None, **{**SMALL_RUN, "corpus_source": "upload a .txt",
                                            "corpus_file": handle_file(str(path))}, api_name="/start_run")
    message = str(error.value)
    assert "'мой корпус.txt' is saved as UTF-16 text" in message and "binary" not in message, message
    assert "/tmp" not in message and "gradio" not in message, message


def test_the_distill_teacher_list_is_refreshed_when_the_page_loads_and_the_tab_opens(runs_dir):
    import app as app_module
    from ui.context import AppContext

    demo = app_module.build_app(AppContext.create())
    teacher = next(b for b in demo.blocks.values() if getattr(b, "label", None) == "Teacher")
    triggers = {(type(demo.blocks.get(block_id, demo)).__name__, event)
                for dependency in demo.fns.values() if teacher in dependency.outputs
                for block_id, event in dependency.targets}
    assert {("Blocks", "load"), ("Tab", "select")} <= triggers, triggers


def test_killing_the_app_loses_no_run(tmp_path):
    runs = tmp_path / "runs"
    first = start_app(runs, tmp_path / "first.log")
    try:
        client = first.client()
        owner, run_id = start_run(client, steps=LONG_RUN_STEPS, save_every=LONG_RUN_STEPS)
        run_dir = runs / run_id
        wait_for(lambda: read_status(run_dir).get("step", 0) >= 10)
    finally:
        first.kill()  # kill -9: the run's process is told to stop and saves a checkpoint
    wait_for(lambda: read_status(run_dir).get("state") == "stopped", timeout=60)
    saved = checkpoint_step(run_dir)
    assert saved >= 10 and saved == read_status(run_dir)["step"]
    second = start_app(runs, tmp_path / "second.log")
    try:
        client = second.client()
        assert "stopped" in state_of(client, run_id, owner)
        client.predict(run_id=run_id, owner=owner, up_to_step=saved + 8, api_name="/resume_run")
        wait_for(lambda: "finished" in state_of(client, run_id, owner), every=0.5)
        assert checkpoint_step(run_dir) == saved + 8
    finally:
        second.kill()


def test_the_speed_for_estimates_is_measured_before_umap_compiles_and_queued_runs_start(monkeypatch):
    import app as app_module
    from core.bench import machine
    from ui import embed_tab

    order = []
    monkeypatch.setattr(machine, "quick_rate", lambda dtype, device: order.append("speed"))
    monkeypatch.setattr(embed_tab, "warm_up_in_background", lambda: order.append("umap"))
    launcher = type("Launcher", (), {"start": lambda self: order.append("queued runs")})()
    app_module.start_background_work(type("Context", (), {"launcher": launcher})())
    assert order == ["speed", "umap", "queued runs"]
