"""MoCo v2 maths on tiny inputs: queue, momentum update, logits, BN groups, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ml.moco import MoCo, MoCoArgs, backbone_factory, build_moco, build_query_encoder, resnet


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_moco(K: int = 10, shuffle_bn: str = "none", **kw) -> MoCo:
    torch.manual_seed(0)
    return MoCo(backbone_factory("resnet10", small_stem=True, width=8), dim=16, K=K,
                shuffle_bn=shuffle_bn, **kw)


def test_queue_wraps_around_when_K_is_not_a_multiple_of_the_batch():
    model = tiny_moco(K=10)
    batches = [F.normalize(torch.randn(4, 16), dim=1) for _ in range(3)]
    for keys in batches:
        model._dequeue_and_enqueue(keys)
    # 12 keys into 10 slots: slots 0, 1 hold the last batch's last two keys
    assert int(model.queue_ptr) == 2
    torch.testing.assert_close(model.queue[:, 0:2], batches[2][2:4].T)
    torch.testing.assert_close(model.queue[:, 2:4], batches[0][2:4].T)
    torch.testing.assert_close(model.queue[:, 4:8], batches[1].T)
    torch.testing.assert_close(model.queue[:, 8:10], batches[2][0:2].T)


def test_queue_keeps_only_the_last_K_keys_of_a_batch_larger_than_K():
    model = tiny_moco(K=3)
    model.queue_ptr.fill_(1)
    keys = F.normalize(torch.randn(5, 16), dim=1)
    model._dequeue_and_enqueue(keys)
    assert int(model.queue_ptr) == (1 + 3) % 3
    torch.testing.assert_close(model.queue[:, [1, 2, 0]], keys[2:].T)


def test_momentum_update_is_an_exponential_moving_average():
    model = tiny_moco(m=0.9)
    with torch.no_grad():
        for p in model.encoder_q.parameters():
            p.fill_(1.0)
        for p in model.encoder_k.parameters():
            p.fill_(3.0)
    model._momentum_update_key_encoder()
    for p in model.encoder_k.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.9 * 3.0 + 0.1 * 1.0))
    # the query encoder is untouched and the key encoder gets no gradient
    assert all(torch.all(p == 1.0) for p in model.encoder_q.parameters())
    assert not any(p.requires_grad for p in model.encoder_k.parameters())


def test_key_encoder_starts_as_a_copy_of_the_query_encoder():
    model = tiny_moco()
    for pq, pk in zip(model.encoder_q.parameters(), model.encoder_k.parameters(), strict=True):
        assert torch.equal(pq, pk)


def test_logits_shape_and_positive_at_index_zero():
    model = tiny_moco(K=7, T=0.2)
    x = torch.rand(6, 3, 32, 32)
    logits, labels = model(x, x)
    assert logits.shape == (6, 1 + 7)
    assert labels.dtype == torch.long and torch.all(labels == 0)
    # identical views through identical encoders with plain BN: cosine 1 / T at index 0
    torch.testing.assert_close(logits[:, 0], torch.full((6,), 1 / 0.2))
    assert torch.all(logits.argmax(dim=1) == 0)
    # the keys went into the queue as unit vectors
    assert int(model.queue_ptr) == 6
    torch.testing.assert_close(model.queue.norm(dim=0), torch.ones(7))


@pytest.mark.parametrize("shuffle_bn", ["groups", "ddp"])
def test_shuffled_keys_come_back_in_input_order(shuffle_bn):
    # in eval mode BN uses running statistics, so grouping cannot change a key: any mix-up
    # of the order by the shuffle shows as a difference from the plain computation
    model = tiny_moco(shuffle_bn=shuffle_bn, bn_groups=3).eval()
    x = torch.rand(9, 3, 32, 32)
    keys = model._keys(x)
    expected = F.normalize(model.encoder_k(x), dim=1)
    torch.testing.assert_close(keys, expected)


def test_groups_normalise_each_group_with_its_own_statistics():
    model = tiny_moco(shuffle_bn="groups", bn_groups=2)
    x = torch.rand(8, 3, 32, 32)
    grouped = model._grouped(model.encoder_q, x)
    torch.testing.assert_close(grouped[:4], model.encoder_q(x[:4]))
    torch.testing.assert_close(grouped[4:], model.encoder_q(x[4:]))
    assert not torch.allclose(grouped, model.encoder_q(x))


def test_a_few_steps_lower_the_loss():
    # The MoCo training loss itself rises while the queue fills with ever harder negatives,
    # so progress is measured on a fixed problem: InfoNCE between two fixed noisy, flipped
    # views of 64 objects, each query against all 64 keys (chance: ln 64 = 4.16).
    torch.manual_seed(0)
    model = MoCo(backbone_factory("resnet10", small_stem=True, width=8), dim=16, K=16,
                 m=0.99, T=0.2, shuffle_bn="groups", bn_groups=2)
    optimizer = torch.optim.SGD(model.encoder_q.parameters(), lr=0.03, momentum=0.9)
    # smooth colour patterns that a CNN with global pooling can tell apart
    objects = F.interpolate(torch.rand(64, 3, 4, 4), size=32, mode="bilinear")
    noise = 0.1
    fixed_q = objects + noise * torch.randn_like(objects)
    fixed_k = torch.flip(objects, dims=[3]) + noise * torch.randn_like(objects)

    def fixed_loss() -> float:
        with torch.no_grad():
            q = F.normalize(model.encoder_q(fixed_q), dim=1)
            k = F.normalize(model.encoder_q(fixed_k), dim=1)
            return F.cross_entropy(q @ k.T / 0.2, torch.arange(64)).item()

    before = fixed_loss()
    for step in range(60):
        x = objects[torch.randperm(64)[:8]]
        im_q = x + noise * torch.randn_like(x)
        im_k = (torch.flip(x, dims=[3]) if step % 2 else x) + noise * torch.randn_like(x)
        logits, labels = model(im_q, im_k)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert fixed_loss() < 0.85 * before


def test_embed_gives_features_before_and_after_the_head():
    model = tiny_moco().eval()
    x = torch.rand(3, 3, 32, 32)
    h, z = model.embed(x)
    assert h.shape == (3, 64) and z.shape == (3, 16)  # resnet10 width 8: 8 * 8 features
    torch.testing.assert_close(z, model.encoder_q(x))


def test_build_query_encoder_matches_the_moco_query_encoder_layout():
    args = MoCoArgs(arch="resnet18", small_stem=True, width=16, K=8, dim=32)
    moco = build_moco(args)
    encoder = build_query_encoder(args)
    encoder.load_state_dict(moco.encoder_q.state_dict())  # same keys and shapes
    assert MoCoArgs.from_dict(args.to_dict()) == args
    with pytest.raises(ValueError, match="unknown model arguments"):
        MoCoArgs.from_dict({"arch": "resnet18", "depth": 3})


@pytest.mark.parametrize(("arch", "expected"), [("resnet18", 512), ("resnet34", 512),
                                                 ("resnet50", 2048)])
def test_backbone_feature_sizes(arch, expected):
    net = resnet(arch, num_classes=128)
    assert net.fc.in_features == expected
    small = resnet(arch, num_classes=128, small_stem=True, width=32)
    assert small.fc.in_features == expected // 2
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert isinstance(small.maxpool, torch.nn.Identity)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown backbone"):
        resnet("resnet99")
    with pytest.raises(ValueError, match="shuffle_bn"):
        tiny_moco(shuffle_bn="sometimes")
    with pytest.raises(ValueError, match="multiple of 8"):
        resnet("resnet18", width=12)
