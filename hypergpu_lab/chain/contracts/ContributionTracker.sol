// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TrainingRegistry} from "./TrainingRegistry.sol";

/// @title ContributionTracker
/// @notice Records each round's contributions (node, integer score, update hash) in one transaction.
/// @dev A round is recorded at most once: a second attempt reverts with RoundAlreadyRecorded, which the
///      Python recorder treats as success. That is what makes resending after a lost acknowledgement safe.
///      Nodes must come in strictly ascending address order: one comparison per node rules out duplicates
///      and the zero address without a second storage lookup.
contract ContributionTracker {
    struct RoundRecord {
        bool recorded;
        uint64 recordedAt;
        uint256 totalScore;
        address[] nodes;
        uint256[] scores;
    }

    TrainingRegistry public immutable registry;

    mapping(bytes32 sessionId => mapping(uint256 round => RoundRecord)) private _rounds;
    mapping(bytes32 sessionId => mapping(address node => uint256)) public totalScoreOf;
    mapping(address node => uint256) public lifetimeScoreOf;
    mapping(bytes32 sessionId => uint256) public roundsRecorded;

    /// @notice One event per round; the update hashes live only here (storage keeps what rewards need).
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
        if (registry.coordinatorOf(sessionId) != msg.sender) revert NotCoordinator(sessionId, msg.sender);
        if (!registry.isActive(sessionId)) revert SessionNotActive(sessionId);
        RoundRecord storage r = _rounds[sessionId][round];
        if (r.recorded) revert RoundAlreadyRecorded(sessionId, round);
        uint256 n = nodes.length;
        if (n == 0) revert NoContributions();
        if (scores.length != n || updateHashes.length != n) {
            revert LengthMismatch(n, scores.length, updateHashes.length);
        }
        uint256 total = _addScores(sessionId, nodes, scores);
        r.recorded = true;
        r.recordedAt = uint64(block.timestamp);
        r.totalScore = total;
        r.nodes = nodes;
        r.scores = scores;
        roundsRecorded[sessionId] += 1;
        emit RoundRecorded(sessionId, round, nodes, scores, updateHashes, total);
    }

    /// @dev Adds each node's score to its totals; checks the strictly ascending order on the way.
    function _addScores(bytes32 sessionId, address[] calldata nodes, uint256[] calldata scores)
        private
        returns (uint256 total)
    {
        address previous = address(0);
        for (uint256 i = 0; i < nodes.length; ++i) {
            address node = nodes[i];
            if (node <= previous) revert NodesNotAscending(i);
            previous = node;
            total += scores[i];
            totalScoreOf[sessionId][node] += scores[i];
            lifetimeScoreOf[node] += scores[i];
        }
    }

    function isRecorded(bytes32 sessionId, uint256 round) external view returns (bool) {
        return _rounds[sessionId][round].recorded;
    }

    /// @return nodes The round's nodes, ascending. @return scores Their scores. @return totalScore The sum.
    function roundContributions(bytes32 sessionId, uint256 round)
        external
        view
        returns (address[] memory nodes, uint256[] memory scores, uint256 totalScore)
    {
        RoundRecord storage r = _rounds[sessionId][round];
        return (r.nodes, r.scores, r.totalScore);
    }
}
