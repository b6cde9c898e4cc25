import pytest

pytest.importorskip("distributed")  # the "dask" extra is part of "dev"


@pytest.fixture(scope="session")
def client():
    """A real cluster: 2 worker processes of 1 thread, shared by the module."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit="1GiB") as cluster, \
            Client(cluster) as client:
        yield client
