// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title TrainingRegistry
/// @notice One entry per federated training session: who coordinates it and what it trains.
/// @dev Session ids are chosen by the caller (the Python recorder derives one per run and keeps it in
///      its outbox), so a restarted recorder can find its own session again instead of opening a second.
contract TrainingRegistry {
    enum Status {
        None,
        Active,
        Completed
    }

    struct Session {
        address coordinator;
        Status status;
        uint64 startedAt;
        uint64 completedAt;
        bytes32 modelHash;
        bytes32 configHash;
        string datasetId;
    }

    mapping(bytes32 sessionId => Session) private _sessions;
    uint256 public sessionCount;

    event SessionStarted(
        bytes32 indexed sessionId, address indexed coordinator, bytes32 modelHash, string datasetId, bytes32 configHash
    );
    event SessionCompleted(bytes32 indexed sessionId, address indexed coordinator);

    error ZeroSessionId();
    error SessionExists(bytes32 sessionId);
    error UnknownSession(bytes32 sessionId);
    error NotCoordinator(bytes32 sessionId, address caller);
    error SessionNotActive(bytes32 sessionId);

    /// @notice Open a session; the caller becomes its coordinator, the only account that may record its rounds.
    function startSession(bytes32 sessionId, bytes32 modelHash, string calldata datasetId, bytes32 configHash)
        external
    {
        if (sessionId == bytes32(0)) revert ZeroSessionId();
        if (_sessions[sessionId].status != Status.None) revert SessionExists(sessionId);
        _sessions[sessionId] = Session({
            coordinator: msg.sender,
            status: Status.Active,
            startedAt: uint64(block.timestamp),
            completedAt: 0,
            modelHash: modelHash,
            configHash: configHash,
            datasetId: datasetId
        });
        sessionCount += 1;
        emit SessionStarted(sessionId, msg.sender, modelHash, datasetId, configHash);
    }

    /// @notice Close a session: no further rounds can be recorded (already funded rewards stay claimable).
    function completeSession(bytes32 sessionId) external {
        Session storage s = _sessions[sessionId];
        if (s.status == Status.None) revert UnknownSession(sessionId);
        if (s.coordinator != msg.sender) revert NotCoordinator(sessionId, msg.sender);
        if (s.status != Status.Active) revert SessionNotActive(sessionId);
        s.status = Status.Completed;
        s.completedAt = uint64(block.timestamp);
        emit SessionCompleted(sessionId, msg.sender);
    }

    function getSession(bytes32 sessionId) external view returns (Session memory) {
        return _sessions[sessionId];
    }

    /// @return The session's coordinator, or the zero address for an unknown session.
    function coordinatorOf(bytes32 sessionId) external view returns (address) {
        return _sessions[sessionId].coordinator;
    }

    function isActive(bytes32 sessionId) external view returns (bool) {
        return _sessions[sessionId].status == Status.Active;
    }
}
