import pytest

from facesketch.data.split import identity, make_split
from facesketch.core.errors import DataError

IDS = [f"{'f' if i % 3 else 'm'}-{i:03d}-01" for i in range(1, 101)]


def split(**kw):
    args = dict(protocol="random", test_fraction=0.2, val_fraction=0.1, seed=7)
    args.update(kw)
    return make_split(IDS, ["train"] * 100, **args)


def test_random_split_is_deterministic_and_sized():
    a, b = split(), split()
    assert a == b
    assert len(a["test"]) == 20
    assert len(a["val"]) == 8            # ceil(0.1 * 80)
    assert len(a["train"]) == 72
    assert split(seed=8)["test"] != a["test"]


def test_parts_are_disjoint_and_cover_everything():
    s = split()
    parts = [set(s["train"]), set(s["val"]), set(s["test"])]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set().union(*parts) == set(IDS)


def test_input_order_does_not_matter():
    s = make_split(list(reversed(IDS)), ["train"] * 100, protocol="random", test_fraction=0.2, val_fraction=0.1, seed=7)
    assert s == split()


def test_one_identity_never_on_both_sides():
    ids = [f"f-{i:03d}-{k:02d}" for i in range(1, 21) for k in (1, 2)]
    s = make_split(ids, ["train"] * 40, protocol="random", test_fraction=0.25, val_fraction=0.1, seed=3)
    train_ids = {identity(i) for i in s["train"] + s["val"]}
    assert train_ids.isdisjoint({identity(i) for i in s["test"]})
    assert len(s["test"]) == 10          # 5 identities x 2 photos
    assert identity("f1-005-01") == "f1-005"


def test_cuhk_protocol_uses_the_archives():
    subsets = ["train"] * 88 + ["test"] * 12
    s = make_split(IDS, subsets, protocol="cuhk", test_fraction=0.2, val_fraction=0.1, seed=7)
    assert sorted(s["test"]) == sorted(IDS[88:])
    assert len(s["train"]) + len(s["val"]) == 88 and len(s["val"]) == 9


def test_cuhk_protocol_without_test_archive_is_a_clear_error():
    with pytest.raises(DataError, match="protocol=cuhk.*0 testing"):
        make_split(IDS, ["train"] * 100, protocol="cuhk", test_fraction=0.2, val_fraction=0.1, seed=7)


def test_folds_test_every_pair_once_and_never_split_an_identity():
    from facesketch.data.split import make_folds

    ids = [f"f-{k // 3:03d}-{k % 3 + 1:02d}" for k in range(60)]  # 20 people, 3 images each
    folds = make_folds(ids, 4, seed=42)
    assert [f["fold"] for f in folds] == [0, 1, 2, 3]
    tested = [i for f in folds for i in f["test"]]
    assert sorted(tested) == sorted(ids)  # each pair tested exactly once
    for f in folds:
        assert set(f["train"]) | set(f["test"]) == set(ids) and not set(f["train"]) & set(f["test"])
        assert not {identity(i) for i in f["train"]} & {identity(i) for i in f["test"]}
        assert f["val"] == []
    sizes = [len({identity(i) for i in f["test"]}) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    assert make_folds(list(reversed(ids)), 4, seed=42) == folds  # order of the ids does not matter
    assert make_folds(ids, 4, seed=7) != folds


def test_folds_refuse_more_folds_than_identities():
    from facesketch.core.errors import DataError
    from facesketch.data.split import make_folds

    with pytest.raises(DataError, match="3 folds need between 2 and 2"):
        make_folds(["a-001-01", "b-002-01"], 3, seed=0)
