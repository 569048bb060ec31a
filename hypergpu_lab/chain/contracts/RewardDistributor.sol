// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {TrainingRegistry} from "./TrainingRegistry.sol";
import {ContributionTracker, contributionsDigest} from "./ContributionTracker.sol";

/// @title RewardDistributor
/// @notice Splits each recorded round's reward pool pro rata by score; nodes withdraw their own balance.
/// @dev Pull payments: funding only credits balances; tokens move to a node only when that node calls
///      claim(), which pays msg.sender and nobody else. claim() follows checks-effects-interactions (the
///      balance is zeroed before the transfer) and both external-calling functions are nonReentrant, so a
///      token with transfer hooks cannot re-enter to be paid twice.
///
///      The round's nodes and scores come back as calldata (storage keeps only their digest, see
///      ContributionTracker) and must hash to what was recorded. Balances cannot be pushed to overflow by
///      an outsider: every credit is backed by tokens pulled into this contract, so a node's claimable
///      balance never exceeds the token's total supply.
///
///      Rounding: share_i = floor(pool * score_i / totalScore). The remainder ("dust", fewer token base
///      units than there are nodes) is never taken from the funder: fundRound pulls exactly the sum of
///      the shares, so no token is stranded in this contract.
contract RewardDistributor is ReentrancyGuard {
    using SafeERC20 for IERC20;

    IERC20 public immutable token;
    TrainingRegistry public immutable registry;
    ContributionTracker public immutable tracker;

    mapping(address node => uint256) public claimable;
    mapping(address node => uint256) public claimed;
    /// One bit per round (256 rounds a slot): a funded round costs a warm 5k write, not a fresh 22k slot.
    mapping(bytes32 sessionId => mapping(uint256 word => uint256)) private _fundedBits;

    event RoundFunded(
        bytes32 indexed sessionId, uint256 indexed round, address indexed funder, uint256 pool, uint256 distributed
    );
    event RewardCredited(bytes32 indexed sessionId, uint256 indexed round, address indexed node, uint256 amount);
    event Claimed(address indexed node, uint256 amount);

    error NotCoordinator(bytes32 sessionId, address caller);
    error RoundNotRecorded(bytes32 sessionId, uint256 round);
    error ContributionsMismatch(bytes32 sessionId, uint256 round);
    error RoundAlreadyFunded(bytes32 sessionId, uint256 round);
    error ZeroPool();
    error NothingToDistribute(bytes32 sessionId, uint256 round);
    error NothingToClaim(address node);

    function isFunded(bytes32 sessionId, uint256 round) external view returns (bool) {
        return _fundedBits[sessionId][round >> 8] & (1 << (round & 255)) != 0;
    }

    constructor(IERC20 token_, ContributionTracker tracker_) {
        token = token_;
        tracker = tracker_;
        registry = tracker_.registry();
    }

    /// @notice Credit `pool` tokens to a recorded round's nodes pro rata by score; pulls the credited sum
    ///         from the caller (approve this contract first). Only the session's coordinator, once a round.
    /// @param nodes The round's nodes and @param scores their scores, exactly as recorded (the event's).
    function fundRound(
        bytes32 sessionId,
        uint256 round,
        uint256 pool,
        address[] calldata nodes,
        uint256[] calldata scores
    ) external nonReentrant returns (uint256 distributed) {
        if (registry.coordinatorOf(sessionId) != msg.sender) revert NotCoordinator(sessionId, msg.sender);
        bytes32 digest = tracker.roundDigest(sessionId, round);
        if (digest == bytes32(0)) revert RoundNotRecorded(sessionId, round);
        uint256 bit = 1 << (round & 255);
        uint256 word = _fundedBits[sessionId][round >> 8];
        if (word & bit != 0) revert RoundAlreadyFunded(sessionId, round);
        if (pool == 0) revert ZeroPool();
        if (contributionsDigest(nodes, scores) != digest) revert ContributionsMismatch(sessionId, round);
        uint256 total = 0;
        for (uint256 i = 0; i < scores.length; ++i) {
            unchecked {
                total += scores[i]; // the recorded scores: each <= MAX_SCORE, at most MAX_NODES of them
            }
        }
        if (total == 0) revert NothingToDistribute(sessionId, round);
        _fundedBits[sessionId][round >> 8] = word | bit;
        for (uint256 i = 0; i < nodes.length; ++i) {
            uint256 share = Math.mulDiv(pool, scores[i], total);
            if (share == 0) continue;
            claimable[nodes[i]] += share;
            distributed += share;
            emit RewardCredited(sessionId, round, nodes[i], share);
        }
        emit RoundFunded(sessionId, round, msg.sender, pool, distributed);
        token.safeTransferFrom(msg.sender, address(this), distributed);
    }

    /// @notice Withdraw the caller's whole balance. Reverts with NothingToClaim when it is zero.
    function claim() external nonReentrant returns (uint256 amount) {
        amount = claimable[msg.sender];
        if (amount == 0) revert NothingToClaim(msg.sender);
        claimable[msg.sender] = 0;
        claimed[msg.sender] += amount;
        emit Claimed(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }
}
