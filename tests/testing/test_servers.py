"""Real PostgreSQL and MLflow servers for tests (ferlight.testing.servers): data shared between
connections, a restart that cuts open connections, an MLflow server that keeps runs and artifacts
and comes back on its port after a stop."""

import socket

import mlflow
import pytest
import sqlalchemy
from sqlalchemy.pool import NullPool

pytestmark = pytest.mark.slow


def test_a_table_written_through_one_connection_is_read_through_another(postgres_url):
    writer, reader = (sqlalchemy.create_engine(postgres_url, poolclass=NullPool) for _ in range(2))
    with writer.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE t (x int)"))
        conn.execute(sqlalchemy.text("INSERT INTO t VALUES (1), (2)"))
    with reader.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT x FROM t ORDER BY x")).scalars().all() == [1, 2]


def test_restart_cuts_open_connections_and_keeps_the_data(postgres, postgres_url):
    engine = sqlalchemy.create_engine(postgres_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE t AS SELECT 7 AS x"))
    with engine.connect() as open_conn:
        postgres.restart()
        with pytest.raises(sqlalchemy.exc.OperationalError) as cut:
            open_conn.execute(sqlalchemy.text("SELECT 1"))
        assert cut.value.connection_invalidated
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT x FROM t")).scalar() == 7


def test_mlflow_server_keeps_runs_and_artifacts_and_comes_back_on_its_port(mlflow_server, tmp_path):
    client = mlflow.MlflowClient(mlflow_server.url)
    run_id = client.create_run(client.create_experiment("servers")).info.run_id
    client.log_metric(run_id, "loss", 0.5)
    (tmp_path / "note.txt").write_text("hello")
    client.log_artifact(run_id, tmp_path / "note.txt")
    assert [p.read_text() for p in mlflow_server.artifacts.rglob("note.txt")] == ["hello"]

    url = mlflow_server.url
    mlflow_server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", mlflow_server.port), timeout=2)
    mlflow_server.start()
    assert mlflow_server.url == url
    assert client.get_run(run_id).data.metrics == {"loss": 0.5}
    assert [a.path for a in client.list_artifacts(run_id)] == ["note.txt"]
