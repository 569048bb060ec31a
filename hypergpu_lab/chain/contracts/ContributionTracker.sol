// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TrainingRegistry} from "./TrainingRegistry.sol";

/// @notice The commitment a recorded round stores for (nodes, scores); one definition for both contracts.
function contributionsDigest(address[] calldata nodes, uint256[] calldata scores) pure returns (bytes32) {
    return keccak256(abi.encode(nodes, scores));
}

/// @title ContributionTracker
/// @notice Records each round's contributions (node, integer score, update hash) in one transaction.
/// @dev Storage holds only what rewards need: one slot per round, the digest of (nodes, scores). The
///      nodes, scores, update hashes and total are audit data and live in the RoundRecorded event; the
///      RewardDistributor is handed the nodes and scores back as calldata and checks them against the
///      digest. That keeps recording near 8k gas per node instead of two storage slots (44k) each.
///
///      Nothing here is shared between sessions: a session's rounds and totals are written only by its own
///      coordinator, and there is no per-node or lifetime counter at all, so no outsider can push a value
///      another session depends on to overflow. Scores are bounded (MAX_SCORE each, MAX_NODES a round), so
///      a round's total cannot overflow either.
///
///      A round is recorded at most once: a second attempt reverts with RoundAlreadyRecorded, which the
///      Python recorder treats as success; that is what makes resending after a lost acknowledgement safe.
///      Nodes must come in strictly ascending address order: one comparison per node rules out duplicates
///      and the zero address without a second storage lookup.
contract ContributionTracker {
    /// Largest score one node may get in one round (2**96 - 1: room for 10**6 per sample on 10**22 samples).
    uint256 public constant MAX_SCORE = type(uint96).max;
    /// Most nodes in one round; with MAX_SCORE it keeps a round's total far below 2**256.
    uint256 public constant MAX_NODES = 4096;

    TrainingRegistry public immutable registry;

    /// keccak256(abi.encode(nodes, scores)) of each recorded round; zero until recorded.
    mapping(bytes32 sessionId => mapping(uint256 round => bytes32)) public roundDigest;

    /// @notice One event per round: the audit record (who, how much, which update).
    event RoundRecorded(
        bytes32 indexed sessionId,
        uint256 indexed round,
        address[] nodes,
        uint256[] scores,
        bytes32[] updateHashes,
        uint256 totalScore
    );

    error NotCoordinator(bytes32 sessionId, address caller);
    error SessionNotActive(bytes32 sessionId);
    error RoundAlreadyRecorded(bytes32 sessionId, uint256 round);
    error NoContributions();
    error TooManyNodes(uint256 nodes, uint256 limit);
    error ScoreTooLarge(uint256 index, uint256 score, uint256 limit);
    error LengthMismatch(uint256 nodes, uint256 scores, uint256 updateHashes);
    error NodesNotAscending(uint256 index);

    constructor(TrainingRegistry registry_) {
        registry = registry_;
    }

    /// @notice Record one round. Only the session's coordinator may call, once per (session, round).
    function recordRound(
        bytes32 sessionId,
        uint256 round,
        address[] calldata nodes,
        uint256[] calldata scores,
        bytes32[] calldata updateHashes
    ) external {
        registry.checkCoordinator(sessionId, msg.sender);
        if (roundDigest[sessionId][round] != bytes32(0)) revert RoundAlreadyRecorded(sessionId, round);
        uint256 n = nodes.length;
        if (n == 0) revert NoContributions();
        if (n > MAX_NODES) revert TooManyNodes(n, MAX_NODES);
        if (scores.length != n || updateHashes.length != n) {
            revert LengthMismatch(n, scores.length, updateHashes.length);
        }
        uint256 total = _checkedTotal(nodes, scores);
        roundDigest[sessionId][round] = contributionsDigest(nodes, scores);
        emit RoundRecorded(sessionId, round, nodes, scores, updateHashes, total);
    }

    /// @dev The sum of the scores; checks the bounds and the strictly ascending order on the way.
    function _checkedTotal(address[] calldata nodes, uint256[] calldata scores) private pure returns (uint256 total) {
        address previous = address(0);
        for (uint256 i = 0; i < nodes.length; ++i) {
            address node = nodes[i];
            if (node <= previous) revert NodesNotAscending(i);
            previous = node;
            uint256 s = scores[i];
            if (s > MAX_SCORE) revert ScoreTooLarge(i, s, MAX_SCORE);
            unchecked {
                total += s; // <= MAX_NODES * MAX_SCORE < 2**108
            }
        }
    }

    function isRecorded(bytes32 sessionId, uint256 round) external view returns (bool) {
        return roundDigest[sessionId][round] != bytes32(0);
    }
}
